"""Pattern-verbalizer pairs: the cloze question and answer words of every task."""

from .base import PVP
from .choice import CopaPVP, RecordPVP, WscPVP
from .classification import AgnewsPVP, YahooPVP, YelpFullPVP, YelpPolarityPVP
from .clue import AfqmcPVP, ClueWscPVP, TnewsPVP
from .glue import ColaPVP, MnliPVP, MrpcPVP, QnliPVP, QqpPVP, Sst2PVP
from .reading import RacePVP, SquadClozePVP
from .superglue import BoolQPVP, CbPVP, MultiRcPVP, RtePVP, WicPVP

__all__ = ["PVP", "CopaPVP", "RecordPVP", "WscPVP", "AfqmcPVP", "ClueWscPVP", "TnewsPVP", "BoolQPVP", "CbPVP",
           "MultiRcPVP", "RtePVP", "WicPVP", "AgnewsPVP", "YahooPVP", "YelpFullPVP", "YelpPolarityPVP", "ColaPVP",
           "MnliPVP", "MrpcPVP", "QnliPVP", "QqpPVP", "Sst2PVP", "RacePVP", "SquadClozePVP"]
