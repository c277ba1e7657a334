"""A faithful local simulator of Iterable's REST API, for tests and benchmarks of the connector."""

from .config import DataSpec, SimulatorConfig
from .exports import ExportJob, JobState
from .faults import Fault, FaultConfig, ScheduledFault
from .simulator import Simulator

__all__ = [
    "DataSpec",
    "ExportJob",
    "Fault",
    "FaultConfig",
    "JobState",
    "ScheduledFault",
    "Simulator",
    "SimulatorConfig",
]
