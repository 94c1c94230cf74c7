"""Zero-shot multiple choice (``--task multichoice``, spec section 9.3)."""
