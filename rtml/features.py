"""The interaction features every process agrees on (names and categories; no dependencies).

Kept apart from :mod:`rtml.simulation` so that the schema, the supervisor and the dashboard can
name the columns without importing the simulator (and numpy).
"""

NUMERICAL_FEATURES = ("age", "session_duration_s", "pages_viewed", "previous_purchases",
                      "days_since_last_visit", "cart_value")
CATEGORICAL_FEATURES = ("device_type", "traffic_source", "region", "customer_segment")
FEATURES = NUMERICAL_FEATURES + CATEGORICAL_FEATURES
LABEL = "converted"

DEVICES = ("desktop", "mobile", "tablet")
TRAFFIC_SOURCES = ("direct", "search", "social", "email", "ads")
REGIONS = ("north", "south", "east", "west")
SEGMENTS = ("budget", "regular", "premium")
CATEGORIES = {"device_type": DEVICES, "traffic_source": TRAFFIC_SOURCES, "region": REGIONS,
              "customer_segment": SEGMENTS}

# Column order of a simulated interaction row, and of a stored customer (see rtml.simulation).
INTERACTION_COLUMNS = ("event_time", "customer_id") + FEATURES + ("converted", "drift_intensity")
CUSTOMER_COLUMNS = ("customer_id", "base_age", "region", "segment", "price_sensitivity", "visit_rate",
                    "propensity", "signup_time", "previous_purchases", "last_visit_time")
