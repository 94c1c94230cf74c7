"""Zero-shot language modelling: LAMBADA accuracy and (adjusted) perplexity (spec section 9.5)."""
