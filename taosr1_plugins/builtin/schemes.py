"""Built-in label schemes."""

from taosr1_plugins.hookspecs import hookimpl
from taosr1_plugins.core.schemes import RatingBin, LabelScheme, Level

TAOSR1 = LabelScheme(
    name="taosr1",
    description="TaoSR1's four relevance levels.",
    levels=(
        Level(key="4", name="Excellent", definition="The item is what the query asks for, key attributes included."),
        Level(
            key="3",
            name="Related",
            definition="The core product matches, but some stated attribute or detail does not, or cannot be confirmed.",
        ),
        Level(
            key="2",
            name="Mismatch",
            definition="Related domain or category, but the core product or a decisive attribute is wrong.",
        ),
        Level(key="1", name="Irrelevant", definition="No meaningful relation to the query."),
    ),
)

ESCI = LabelScheme(
    name="esci",
    description="Amazon Shopping Queries (ESCI) labels, ordered from most to least relevant.",
    levels=(
        Level(key="E", name="Exact", definition="The item is relevant for the query and satisfies all its specifications."),
        Level(
            key="S",
            name="Substitute",
            definition="The item fails some aspect of the query but can be used in place of the exact item.",
        ),
        Level(
            key="C",
            name="Complement",
            definition="The item does not fulfil the query but could be used together with an exact item.",
        ),
        Level(key="I", name="Irrelevant", definition="The item is irrelevant or fails a central aspect of the query."),
    ),
    raw_labels={"exact": "E", "substitute": "S", "complement": "C", "irrelevant": "I"},
)

CROWDFLOWER = LabelScheme(
    name="crowdflower",
    description="Crowdflower Search Results Relevance: median of three crowd ratings on 1-4.",
    levels=(
        Level(key="4", name="Perfect", definition="The product is exactly what the query is looking for."),
        Level(key="3", name="Good", definition="The product matches the query well, with minor differences."),
        Level(key="2", name="Fair", definition="The product is loosely related to the query."),
        Level(key="1", name="Irrelevant", definition="The product does not match the query."),
    ),
)

HOME_DEPOT = LabelScheme(
    name="home_depot",
    description=(
        "Home Depot Product Search Relevance: the mean of at least three 1-3 ratings, bucketed "
        "(<=1.67 -> 1, 2-2.33 -> 2, >=2.5 -> 3)."
    ),
    levels=(
        Level(
            key="3",
            name="Perfect match",
            definition="Exactly what the customer was looking for; a brand query answered by that brand; "
            "the searched product is part of the kit shown.",
        ),
        Level(
            key="2",
            name="Partially relevant",
            definition="Same product but differs in brand, dimensions, colour or specifications; an ambiguous "
            "synonym; only one of several searched items.",
        ),
        Level(
            key="1",
            name="Irrelevant",
            definition="Unrelated; or a tool, accessory, part, cover or case used with the searched item; or a "
            "different meaning despite shared words.",
        ),
    ),
    buckets=(RatingBin(max=1.67, key="1"), RatingBin(max=2.33, key="2"), RatingBin(max=3.0, key="3")),
)

KUAISEARCH = LabelScheme(
    name="kuaisearch",
    description="KuaiSearch demo scores 0-3 (higher is more relevant; the exact rubric is not public).",
    levels=(
        Level(key="3", name="Highly relevant", definition="The item fully matches the query's product and intent."),
        Level(key="2", name="Relevant", definition="The item matches the core product with some differences."),
        Level(key="1", name="Weakly relevant", definition="The item shares only the domain or a minor aspect."),
        Level(key="0", name="Irrelevant", definition="The item does not match the query."),
    ),
)

BUILTIN_SCHEMES = (TAOSR1, ESCI, CROWDFLOWER, HOME_DEPOT, KUAISEARCH)


@hookimpl
def register_label_schemes(register):
    for scheme in BUILTIN_SCHEMES:
        register(scheme)
