# Sourced (not executed) by the mariadb image's entrypoint on the first
# start, after 01-shop.sql. Ferry's user may read the binlog and the shop
# schema, and nothing else:
#   REPLICATION SLAVE   stream the binlog (COM_BINLOG_DUMP)
#   REPLICATION CLIENT  SHOW MASTER STATUS / SHOW BINARY LOGS (BINLOG MONITOR on MariaDB 10.5+)
#   SELECT on shop.*    table metadata, backfills and snapshots
docker_process_sql <<-SQL
	CREATE USER 'ferry'@'%' IDENTIFIED BY '${FERRY_MYSQL_PASSWORD:?set FERRY_MYSQL_PASSWORD}';
	GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'ferry'@'%';
	GRANT SELECT ON shop.* TO 'ferry'@'%';
SQL
