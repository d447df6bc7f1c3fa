"""`selfhost plan`: the deployment decision. Enumerate engine settings, prune what cannot work without measuring
(fit's memory plan, llama.cpp's own rules, quant's verdicts), measure the rest on the real engine with an adaptive
search, and write a card (card.json + card.html) that `plan verify` can re-check."""
