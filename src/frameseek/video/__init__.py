"""Video in: sources (file, link, upload, folder), exact-PTS decoding, sampling, shot changes, previews."""
