# frozen_string_literal: true

# One cell of the demo topology. Started by demo/topology.rb as
#   CELL_NAME=cell_eu0 DATABASE=demo-out/demo.sqlite3 puma -b tcp://127.0.0.1:9103 -t 4:8 demo/cell/config.ru
# (see app.rb for the environment it reads).
require_relative "app"

begin
  run Demo::Cell.build
rescue Demo::Cell::ConfigError, Demo::DB::Error, Gitlab::Cells::Learn::Error => e
  warn "cell #{ENV.fetch("CELL_NAME", nil)}: #{e.message}"
  exit 78 # EX_CONFIG: the launcher reports it instead of waiting for a port that never opens
end
