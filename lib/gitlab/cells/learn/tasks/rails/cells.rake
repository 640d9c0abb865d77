# frozen_string_literal: true

# The tasks a Rails application gets from Gitlab::Cells::Learn::Railtie:
#
#   rake cells:compile                                   # write the classifier artifact (build time)
#   rake cells:routes:export                             # write config/routing/gitlab_routes.json
#   rake "cells:routes:export[tmp/routes.json]"
#   rake "cells:verify[log/production_json.log,log/api_json.log]"   # HOST=ideal, LIMIT=50
#
# Each loads the application (`:environment`) and reads Rails.application.routes as drawn in the
# current RAILS_ENV: compile with the RAILS_ENV the servers run with, or boot recompiles (with a warning).

namespace :cells do
  desc "Compile the application's routes and learn rules into the artifact boot loads (config.cells_learn.artifact)"
  task compile: :environment do
    holder = Gitlab::Cells::Learn::Railtie.classifier
    abort "cells:compile: config.cells_learn.artifact is nil: nothing to write" unless holder.artifact

    written = holder.compile!
    puts "cells:compile: #{written[:routes]} routes, digest #{written[:digest]}, #{written[:bytes]} bytes -> #{written[:path]}"
  end

  namespace :routes do
    desc "Write GitLab's route snapshot (template, example, acceptsFormat, dottedExample) of the application's routes " \
         "(default config.cells_learn.routes_snapshot: config/routing/gitlab_routes.json)"
    task :export, [:file] => :environment do |_task, args|
      path = File.expand_path(args[:file] || Rails.application.config.cells_learn.routes_snapshot, Rails.root)
      entries = Gitlab::Cells::Learn::RouteSnapshot.from_rails(Rails.application.routes)
      FileUtils.mkdir_p(File.dirname(path))
      File.write(path, Gitlab::Cells::Learn::RouteSnapshot.to_json(entries))
      puts "cells:routes:export: #{entries.size} templates -> #{path}"
    end
  end

  desc "Replay production_json.log / api_json.log lines: how often the classifier names the controller#action " \
       "or Grape route that served (HOST=ideal: dynamic constraints hold exactly for the route that served; LIMIT=n differences shown)"
  task :verify, [:file] => :environment do |_task, args|
    files = [args[:file], *args.extras].compact
    files = ENV.fetch("LOG", "").split(",") if files.empty?
    abort "cells:verify: give the log files: rake \"cells:verify[log/production_json.log,log/api_json.log]\"" if files.empty?

    ideal = case ENV.fetch("HOST", "accept-all")
            when "ideal" then true
            when "accept-all" then false
            else abort "cells:verify: HOST must be accept-all or ideal, not #{ENV["HOST"].inspect}"
            end
    limit = ENV["LIMIT"] ? Integer(ENV["LIMIT"], exception: false) : nil
    abort "cells:verify: LIMIT must be an integer, not #{ENV["LIMIT"].inspect}" if ENV["LIMIT"] && limit.nil?

    replay = Gitlab::Cells::Learn::LogReplay.new(Gitlab::Cells::Learn::Railtie.classifier, ideal: ideal)
    differing = 0
    files.each do |file|
      path = File.expand_path(file, Rails.root)
      abort "cells:verify: no log at #{path}" unless File.file?(path)

      report = begin
        replay.replay_file(path)
      rescue Gitlab::Cells::Learn::InvalidRequestError => e
        abort "cells:verify: #{e.message}"
      end
      puts report.to_text(limit: limit)
      differing += report.differences.size
    end
    exit(1) unless differing.zero?
  end
end
