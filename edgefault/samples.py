"""One rule for turning stored or pushed samples into float32 (issue #12 item 9, issue #18 item 2).

Used by both the file readers (:func:`edgefault.io.readers.read_recording`) and the live path
(:meth:`edgefault.Runtime.push`), so the same integer values give the same floats either way.

A sample ``x`` of dtype ``d`` becomes ``(x - offset) * scale`` with ``(scale, offset)`` from
:func:`scale_offset`:

=================  ==========================  ============================  ==========================
dtype              rule ``"full_scale"``        rule ``"float"`` (as-is)      ``input_scale=s`` given
=================  ==========================  ============================  ==========================
float16/32/64      ``x``                        ``x``                         ``x * s``
int8/16/32         ``x / 2**(bits-1)``          ``x``                         ``x * s``
uint8/16/32        ``(x - 2**(bits-1)) /``      ``x``                         ``x * s``
                   ``2**(bits-1)``
int64 / uint64     refused (InputError)         refused (InputError)          ``x * s``
bool, other        refused (InputError)         refused                       refused
=================  ==========================  ============================  ==========================

``"full_scale"`` maps every integer type onto [-1, 1) (signed: two's complement full scale;
unsigned: offset binary with the mid-code ``2**(bits-1)`` as zero, as 8-bit WAV stores it).
int64 / uint64 are refused because float32 (and the product's float64 intermediate) cannot hold
every 64-bit value exactly, and there is no agreed full scale for them: pass an explicit
``input_scale`` to accept them (then ``x * input_scale``, computed in float64).

Which rule applies:

- **file reads** always use ``"full_scale"`` (``read_recording(..., input_scale=s)`` replaces it
  by ``x * s``); the :class:`~edgefault.io.readers.Recording` records the rule its data went
  through in ``Recording.input_scaling`` (``"full_scale"`` when an integer channel was scaled,
  else ``"float"``);
- **training / pack** writes the rule of the training data into the bundle manifest as
  ``input_scaling``: ``"full_scale"`` when any training recording held integer samples,
  ``"float"`` when all of it was float (taken as is);
- **Runtime.push** applies the bundle's ``input_scaling`` rule to integer chunks, so raw counts
  pushed to a model trained on raw-count floats stay raw counts, and PCM pushed to a model
  trained on PCM files is scaled the same way; ``Runtime(input_scale=s)`` overrides it.
  Bundles written before the entry existed use :data:`LEGACY` (the behaviour of earlier
  versions: int16 / int32 full scale, other integers and float16 as is).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from edgefault.errors import InputError

__all__ = ["RULES", "LEGACY", "scale_offset", "to_float", "training_scaling", "check_rule"]

#: rule names accepted in a bundle's ``input_scaling`` entry
RULES = ("full_scale", "float")
#: the rule of bundles without an ``input_scaling`` entry (earlier versions' Runtime)
LEGACY = "legacy"


def check_rule(rule: object, where: str = "input_scaling") -> str:
    if rule not in RULES + (LEGACY,):
        raise InputError(f"{where} must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
    return str(rule)


def scale_offset(dtype: np.dtype | type, rule: str = "full_scale", input_scale: float | None = None,
                 what: str = "samples") -> tuple[float, float]:
    """``(scale, offset)`` such that ``(x - offset) * scale`` is the float value of sample ``x``.

    ``what`` names the input in the InputError raised for a dtype that is refused.
    """
    d = np.dtype(dtype)
    kind, bits = d.kind, 8 * d.itemsize
    if kind not in "fiu" or (kind == "f" and bits > 64):
        raise InputError(f"{what}: dtype {d} is not supported; expected float16/32/64 or (unsigned) "
                         f"integers of 8, 16 or 32 bits")
    if input_scale is not None:
        return float(input_scale), 0.0
    if kind == "f":
        return 1.0, 0.0
    if bits > 32:
        raise InputError(f"{what}: dtype {d} is refused: 64-bit integers do not convert to float exactly and "
                         f"have no agreed full scale; convert them yourself, or pass an explicit input_scale "
                         f"(each value is then multiplied by it)")
    if rule == "float" or (rule == LEGACY and not (kind == "i" and bits in (16, 32))):
        return 1.0, 0.0
    half = float(2 ** (bits - 1))
    return 1.0 / half, (half if kind == "u" else 0.0)


def to_float(x: np.ndarray, rule: str = "full_scale", input_scale: float | None = None,
             what: str = "samples") -> np.ndarray:
    """``x`` as float32 under the rule (a new array, or ``x`` itself when it is float32 and unscaled)."""
    x = np.asarray(x)
    scale, offset = scale_offset(x.dtype, rule, input_scale, what)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, flagged downstream as non-finite
        if scale == 1.0 and offset == 0.0:
            return x.astype(np.float32, copy=False)
        wide = x.dtype.kind in "iu" and x.dtype.itemsize > 2 or input_scale is not None
        work = np.float64 if wide else np.float32  # int32 / scaled values: round once, in float64
        y = x.astype(work)
        if offset:
            y -= work(offset)
        y *= work(scale)
        return y.astype(np.float32, copy=False)


def training_scaling(rules: Iterable[str]) -> str:
    """The bundle's ``input_scaling`` for training data whose recordings went through ``rules``."""
    return "full_scale" if any(r == "full_scale" for r in rules) else "float"
