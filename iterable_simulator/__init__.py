"""A faithful local simulator of Iterable's REST API, for tests and benchmarks of the connector."""

from .config import DataSpec, SimulatorConfig
from .exports import ExportJob, JobState
from .faults import Fault, FaultConfig, ListingShift, ScheduledFault
from .simulator import Simulator

__all__ = [
    "DataSpec",
    "ExportJob",
    "Fault",
    "FaultConfig",
    "JobState",
    "ListingShift",
    "ScheduledFault",
    "Simulator",
    "SimulatorConfig",
]
