-- delete_stream: hide every version written so far.
UPDATE {schema}.streams SET deleted_through = version WHERE stream_id = $1
