"""Studies: grids of training runs (models x knob values x seeds), their evaluation, reports
and figures."""
