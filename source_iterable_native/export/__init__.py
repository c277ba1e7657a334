from .capture import BackfillPage, ExportCapture
from .jobs import ExportJobs, ExportWindow, JobState, Priority

__all__ = ["BackfillPage", "ExportCapture", "ExportJobs", "ExportWindow", "JobState", "Priority"]
