"""Pattern-verbalizer pairs: the cloze question and answer words of every task."""

from .base import PVP
from .choice import CopaPVP, RecordPVP, WscPVP
from .clue import AfqmcPVP, ClueWscPVP, TnewsPVP
from .superglue import BoolQPVP, CbPVP, MultiRcPVP, RtePVP, WicPVP

__all__ = ["PVP", "CopaPVP", "RecordPVP", "WscPVP", "AfqmcPVP", "ClueWscPVP", "TnewsPVP", "BoolQPVP", "CbPVP",
           "MultiRcPVP", "RtePVP", "WicPVP"]
