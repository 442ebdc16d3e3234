"""The prisma-migrate command line (migrate_cli.cli)."""
