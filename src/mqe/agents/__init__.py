"""Agent registry: every agent has a config dataclass (``mqe.agents.configs``) and a class with the same
contract (``mqe/agents/<name>.py``).

Contract (checked by ``tests/test_agent_contract.py`` for every entry):
``create(key, example_observations, example_actions, config)``, ``update(batch) -> (agent, metrics)``,
``total_loss(params, batch) -> (loss, metrics)``, ``sample_actions(observations, goals)``; agents with a
learned distance also provide ``distance(observations, goals)`` returning (E, ...) and ``step_distance()``,
and agents that can say how many steps a goal is away ``steps_functions()`` (``mqe.load(...).steps``, the
planner).

The registry imports no JAX: an agent's module (and JAX with it) loads when its ``agent_class`` is first
asked for, so resolving a config stays light.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from mqe.agents.configs import (CMDConfig, CRLConfig, GCBCConfig, GCIQLConfig, GCIVLConfig, HIQLConfig, MQEConfig,
                                QRLConfig, SACBCConfig, TMDConfig, TRAConfig)


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    class_name: str  # the agent class, in mqe/agents/<registry name>.py
    config_class: Any
    summary: str = ""  # one line for `mqe agents`
    module: str = ""  # set by the registry: mqe.agents.<name>

    @property
    def agent_class(self) -> Any:
        return getattr(importlib.import_module(self.module), self.class_name)


_SPECS = {
    "mqe": AgentSpec("MQEAgent", MQEConfig, "MQE: quasimetric critic, multistep LINEX backups, DDPG+BC (this paper)"),
    "gcbc": AgentSpec("GCBCAgent", GCBCConfig, "GCBC: goal-conditioned behaviour cloning"),
    "gcivl": AgentSpec("GCIVLAgent", GCIVLConfig, "GCIVL: implicit V-learning (expectile) + AWR policy"),
    "gciql": AgentSpec("GCIQLAgent", GCIQLConfig, "GCIQL: implicit Q-learning (expectile V, Q) + DDPG+BC policy"),
    "crl": AgentSpec("CRLAgent", CRLConfig, "CRL: contrastive critic (binary NCE) + DDPG+BC policy"),
    "hiql": AgentSpec("HIQLAgent", HIQLConfig, "HIQL: GCIVL value with a goal representation + high/low AWR policies"),
    "qrl": AgentSpec("QRLAgent", QRLConfig, "QRL: IQE quasimetric with a dual one-step constraint + latent-model DDPG+BC"),
    "sacbc": AgentSpec("SACBCAgent", SACBCConfig, "n-step SAC+BC: cross-entropy critic on n-step success targets"),
    "cmd": AgentSpec("CMDAgent", CMDConfig, "CMD: one MRN representation trained by binary NCE + DDPG+BC policy"),
    "tmd": AgentSpec("TMDAgent", TMDConfig, "TMD: contrastive MRN critic + invariance + one-step LINEX backup"),
    "tra": AgentSpec("TRAAgent", TRAConfig, "TRA-g: phi(s), psi(s+) aligned by symmetric InfoNCE + BC policy on them"),
}
AGENTS: dict[str, AgentSpec] = {name: dataclasses.replace(spec, module=f"mqe.agents.{name}")
                                for name, spec in _SPECS.items()}
