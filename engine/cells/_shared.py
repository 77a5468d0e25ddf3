"""Parts that several cells share."""

from .._jit import jit


@jit
def h_rows(H, flags):
    """Rows of a layer's state when it is h alone (the ``rows`` of rnn, gru and cec)."""
    return H
