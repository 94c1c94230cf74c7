"""Task readers: one :class:`~tasks.superglue.processors.base.DataProcessor` subclass per task."""

from .base import DataProcessor, SuperGlueProcessor, read_json_lines
from .classification import AgnewsProcessor, YahooAnswersProcessor, YelpFullProcessor, YelpPolarityProcessor
from .clue import AfqmcProcessor, ClueWscProcessor, TnewsProcessor
from .glue import (ColaProcessor, MnliMismatchedProcessor, MnliProcessor, MrpcProcessor, QnliProcessor,
                   QqpProcessor, Sst2Processor)
from .reading import RaceProcessor, SquadClozeProcessor
from .record import RecordProcessor
from .superglue import (AxBProcessor, AxGProcessor, BoolQProcessor, CbProcessor, CopaProcessor,
                        MultiRcProcessor, RteProcessor, WicProcessor)
from .wsc import Wsc1Processor, WscProcessor

__all__ = ["DataProcessor", "SuperGlueProcessor", "read_json_lines", "AfqmcProcessor", "ClueWscProcessor",
           "TnewsProcessor", "RecordProcessor", "AxBProcessor", "AxGProcessor", "BoolQProcessor", "CbProcessor",
           "CopaProcessor", "MultiRcProcessor", "RteProcessor", "WicProcessor", "Wsc1Processor", "WscProcessor",
           "AgnewsProcessor", "YahooAnswersProcessor", "YelpFullProcessor", "YelpPolarityProcessor",
           "ColaProcessor", "MnliMismatchedProcessor", "MnliProcessor", "MrpcProcessor", "QnliProcessor",
           "QqpProcessor", "Sst2Processor", "RaceProcessor", "SquadClozeProcessor"]
