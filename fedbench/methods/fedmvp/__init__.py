"""FedMVP (Che, Wang, Liu, Ma; ECML-PKDD 2024): frozen encoders, modality completion before
federation, a small multimodal client network trained with MCM and RAM losses, and CKA-graph
aggregation on the server (reference/methods.md §4).

Building blocks, as plain torch modules and pure functions:

- :mod:`.config`: ``FedMVPOptions``, the paper's defaults and the named code-vs-paper choices;
- :mod:`.losses`: the MCM and RAM losses;
- :mod:`.network`: the client network over frozen features;
- :mod:`.completion`: modality completion (retrieval, none, impute), its quality and its cache;
- :mod:`.generate`: the captioner / text-to-image completer for GPU machines.

FedMVP is not a prompt-tuning method.
"""
