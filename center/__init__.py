"""`huxiao center`: the command center that receives alarms and status reports from many school gateways."""
