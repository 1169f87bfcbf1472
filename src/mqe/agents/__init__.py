"""Agent registry: every agent has a config dataclass and a class with the same contract.

Contract (checked by ``tests/test_agent_contract.py`` for every entry):
``create(key, example_observations, example_actions, config)``, ``update(batch) -> (agent, metrics)``,
``total_loss(params, batch) -> (loss, metrics)``, ``sample_actions(observations, goals)``; agents with a
learned distance also provide ``distance(observations, goals)`` returning (E, ...).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mqe.agents.cmd import CMDAgent, CMDConfig
from mqe.agents.crl import CRLAgent, CRLConfig
from mqe.agents.gcbc import GCBCAgent, GCBCConfig
from mqe.agents.gciql import GCIQLAgent, GCIQLConfig
from mqe.agents.gcivl import GCIVLAgent, GCIVLConfig
from mqe.agents.hiql import HIQLAgent, HIQLConfig
from mqe.agents.mqe import MQEAgent, MQEConfig
from mqe.agents.qrl import QRLAgent, QRLConfig
from mqe.agents.sacbc import SACBCAgent, SACBCConfig
from mqe.agents.tmd import TMDAgent, TMDConfig
from mqe.agents.tra import TRAAgent, TRAConfig


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    agent_class: Any
    config_class: Any
    summary: str = ""  # one line for `mqe agents`


AGENTS: dict[str, AgentSpec] = {
    "mqe": AgentSpec(MQEAgent, MQEConfig, "MQE: quasimetric critic, multistep LINEX backups, DDPG+BC (this paper)"),
    "gcbc": AgentSpec(GCBCAgent, GCBCConfig, "GCBC: goal-conditioned behaviour cloning"),
    "gcivl": AgentSpec(GCIVLAgent, GCIVLConfig, "GCIVL: implicit V-learning (expectile) + AWR policy"),
    "gciql": AgentSpec(GCIQLAgent, GCIQLConfig, "GCIQL: implicit Q-learning (expectile V, Q) + DDPG+BC policy"),
    "crl": AgentSpec(CRLAgent, CRLConfig, "CRL: contrastive critic (binary NCE) + DDPG+BC policy"),
    "hiql": AgentSpec(HIQLAgent, HIQLConfig, "HIQL: GCIVL value with a goal representation + high/low AWR policies"),
    "qrl": AgentSpec(QRLAgent, QRLConfig, "QRL: IQE quasimetric with a dual one-step constraint + latent-model DDPG+BC"),
    "sacbc": AgentSpec(SACBCAgent, SACBCConfig, "n-step SAC+BC: cross-entropy critic on n-step success targets"),
    "cmd": AgentSpec(CMDAgent, CMDConfig, "CMD: one MRN representation trained by binary NCE + DDPG+BC policy"),
    "tmd": AgentSpec(TMDAgent, TMDConfig, "TMD: contrastive MRN critic + invariance + one-step LINEX backup"),
    "tra": AgentSpec(TRAAgent, TRAConfig, "TRA-g: phi(s), psi(s+) aligned by symmetric InfoNCE + BC policy on them"),
}
