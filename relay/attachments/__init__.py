"""Photos and files: what a file is, images made safe, blobs, uploads and downloads."""
