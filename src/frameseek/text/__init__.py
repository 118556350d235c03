"""What is said and written in a video: subtitles, speech recognition, on-screen text, and matching them."""
