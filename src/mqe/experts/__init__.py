"""Locomotion experts trained with our own SAC; they drive the AntMaze data collection."""
