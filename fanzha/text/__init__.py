"""Text recognition: normalise, recognise indicators, apply typology rules and the model."""
