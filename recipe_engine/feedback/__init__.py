"""Human feedback on HILDIF's explanations: one append-only JSONL file per round
(``store``), filled from a pre-filled file or ``no_human`` (``files``), a terminal prompt
(``terminal``) or a local web page (``web``)."""
