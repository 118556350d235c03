"""The lab's datasets: image-caption pairs (Flickr8k/30k, COCO, CSV / JSONL) and MSR-VTT video captions."""
