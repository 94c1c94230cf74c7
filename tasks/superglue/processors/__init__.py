"""Task readers: one :class:`~tasks.superglue.processors.base.DataProcessor` subclass per task."""

from .base import DataProcessor, SuperGlueProcessor, read_json_lines
from .clue import AfqmcProcessor, ClueWscProcessor, TnewsProcessor
from .record import RecordProcessor
from .superglue import (AxBProcessor, AxGProcessor, BoolQProcessor, CbProcessor, CopaProcessor,
                        MultiRcProcessor, RteProcessor, WicProcessor)
from .wsc import Wsc1Processor, WscProcessor

__all__ = ["DataProcessor", "SuperGlueProcessor", "read_json_lines", "AfqmcProcessor", "ClueWscProcessor",
           "TnewsProcessor", "RecordProcessor", "AxBProcessor", "AxGProcessor", "BoolQProcessor", "CbProcessor",
           "CopaProcessor", "MultiRcProcessor", "RteProcessor", "WicProcessor", "Wsc1Processor", "WscProcessor"]
