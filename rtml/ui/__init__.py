"""The Streamlit dashboard: ``data`` (bounded reads), ``transforms`` (pure), ``charts`` (plotly),
``panels`` (one function per section) and ``app`` (the page outline). Importing does nothing."""
