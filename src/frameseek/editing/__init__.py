"""What is made for editors: a hit's frame and clip, supercuts, EDL / OTIO markers."""
