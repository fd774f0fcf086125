"""What a run shares with others: model cards, one-head exports, the hub push and the run report.

- :mod:`~sec_cybert.sharing.modelcard`: the ``README.md`` of every saved directory, rendered by
  huggingface_hub's ``ModelCard.from_template`` from ``templates/model_card.md``; the front matter
  and ``model-index`` come from ``ModelCardData`` and ``EvalResult``
  (:mod:`~sec_cybert.sharing.card_metadata`), the sentences about each stage from
  :mod:`~sec_cybert.sharing.card_text`.
- :mod:`~sec_cybert.sharing.export`: one head of a fine-tune as a plain transformers classifier.
- :mod:`~sec_cybert.sharing.hub`: uploading a saved directory to the Hugging Face Hub.
- :mod:`~sec_cybert.sharing.report`: ``sec-cybert report RUN_DIR``, markdown and HTML (markdown-it-py).

``sec_cybert.modelcard``, ``sec_cybert.export`` and ``sec_cybert.report`` still import, with a
DeprecationWarning, for one release (:mod:`sec_cybert._moved`).
"""
