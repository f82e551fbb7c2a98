"""The registry's storage, shared by the API's domains: bikes with their owners, plates and
tags (``bikes``, and finding one: ``bike_search``), thefts, watches and what they raise
(``cases``), the audit trail (``audit``) and the bulk loaders of imports, the demo and the
tests (``loaders``).

Any domain's service may import these modules; a domain's own tables live in its
``store.py`` instead. The caller owns the transaction.
"""
