from .capture import ExportCapture
from .jobs import ExportJobs, ExportWindow, JobState, Priority

__all__ = ["ExportCapture", "ExportJobs", "ExportWindow", "JobState", "Priority"]
