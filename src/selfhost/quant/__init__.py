"""`selfhost quant`: the lowest quantization that still does your job, with statistics behind it."""
