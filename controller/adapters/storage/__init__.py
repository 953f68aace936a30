"""The S3 adapter: ``client`` (the boto3 client and the translation of botocore failures) and
``inventory`` (what the bucket holds per entry, from paginated listings)."""
