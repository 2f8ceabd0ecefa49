"""Training side. Heavy dependencies (torch, scikit-learn) are imported only by the modules that
need them; `pip install edgefault[train]` installs them."""
