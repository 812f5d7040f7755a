"""Each data kind's ``data`` and ``preprocess`` sections of the experiment file, one light module per kind.

``meddl/modalities/sections/<kind>.py`` defines ``Data`` and ``Preprocess`` (subclasses of
:class:`meddl.sections.DataSection` and :class:`meddl.sections.PreprocessSection`); :mod:`meddl.config` joins them
into the experiment schema for every kind the registry lists. These modules import pydantic only, never torch or
the kind's own code, so an experiment file is validated before anything heavy is loaded.
"""
