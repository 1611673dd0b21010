"""Networks: layers, augmentation, bodies and heads (each owns itself), the model builder and the serving form."""
