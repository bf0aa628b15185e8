"""Theory made executable: constructions and measurements behind the claims of the field.

Modules:
  approximation     the universal approximation theorem, built by hand, with error bounds
  regions           linear pieces and regions of ReLU networks: depth against width
  distribution_fit  a Gaussian fitted to a mixture by KL either way, JS and MMD

Layer: the top; it may use everything below.
"""

from fnn.theory import approximation as approximation
from fnn.theory import distribution_fit as distribution_fit
from fnn.theory import regions as regions

__all__ = [
    "approximation",
    "regions",
    "distribution_fit",
]
