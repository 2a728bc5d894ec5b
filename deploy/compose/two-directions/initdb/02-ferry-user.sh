# Sourced (not executed) by the mariadb image's entrypoint on the first
# start, after 01-erp.sql. Ferry A's user may read the binlog and the erp
# schema, and nothing else.
docker_process_sql <<-SQL
	CREATE USER 'ferry'@'%' IDENTIFIED BY '${FERRY_MYSQL_PASSWORD:?set FERRY_MYSQL_PASSWORD}';
	GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'ferry'@'%';
	GRANT SELECT ON erp.* TO 'ferry'@'%';
SQL
