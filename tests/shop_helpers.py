"""A shop's own 0-3 label scheme, as a user would write it: the YAML that the own-data tests import with."""

SHOP_SCHEME = """\
name: shop
description: A shop's own 0-3 grades.
levels:
  - {key: "3", name: Exact, definition: The product is what the query asks for.}
  - {key: "2", name: Substitute, definition: A close product that differs in an attribute the query states.}
  - {key: "1", name: Complement, definition: A product used together with what the query asks for.}
  - {key: "0", name: Irrelevant, definition: Unrelated to the query.}
"""
