# The compiled half of LeNet's preprocessing (_ink.c).
import numpy as np
from numpy.typing import NDArray

NO_CONTRAST: int
NO_INK: int
NOT_FINITE: str
TOO_LARGE: str
MAX_SIDE: int
INK_THRESHOLD: float
FAINT: float
GRAIN_QUANTILE: float
GRAIN_FACTOR: float

def ink_box(gray: NDArray[np.float32], h: int, w: int, /) -> tuple[bytearray, int, int] | int: ...
def centre(digit: NDArray[np.float32], h: int, w: int, /) -> bytearray: ...
