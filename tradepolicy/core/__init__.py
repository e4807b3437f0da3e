"""The compiled solver core (see :mod:`tradepolicy.core.kernel`)."""
