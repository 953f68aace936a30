"""One seam per outside system: Kaltura, the archive (S3 or a folder, the lease), LDAP, SMTP."""
