from .jobs import ExportJobs

__all__ = ["ExportJobs"]
