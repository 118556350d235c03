"""From frame scores and text spans to moments: ranking, temporal NMS, segments, fusion of tracks, refinement."""
