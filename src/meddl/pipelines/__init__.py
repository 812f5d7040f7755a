"""One pipeline per data kind; ``meddl.Experiment`` picks the one ``data.kind`` names."""
