# frozen_string_literal: true

# `rake cells:coverage[routes.json]`: which routes the learn rules leave unclassified.
#
#   rake cells:coverage                                  # ../shared/corpus/gitlabish-routes.json
#   rake "cells:coverage[config/routes.json]"            # or ROUTES=config/routes.json
#   RULES=rules/custom.json OUT=report.html rake cells:coverage
#
# Prints the summary and writes an HTML report (tmp/cells-coverage.html unless OUT says
# otherwise). Needs only the built native library (lib/gitlab_cells_learn.so): it does not compile.

require "fileutils"

namespace :cells do
  desc "Coverage of a route table by the learn rules: summary, and an HTML report in tmp/cells-coverage.html " \
       "(ROUTES=table.json, RULES=rules.json, OUT=report.html)"
  task :coverage, [:routes_json] do |_task, args|
    root = File.expand_path("../../../../..", __dir__)
    lib = File.expand_path("../../../..", __dir__)
    $LOAD_PATH.unshift(lib) unless $LOAD_PATH.include?(lib)

    routes_path = args[:routes_json] || ENV["ROUTES"] || File.expand_path("../shared/corpus/gitlabish-routes.json", root)
    routes_path = File.expand_path(routes_path, Dir.pwd)
    abort "cells:coverage: no route table at #{routes_path} (give one as cells:coverage[FILE] or ROUTES=FILE)" unless File.file?(routes_path)

    rules_path = ENV.fetch("RULES", nil)
    rules_path = File.expand_path(rules_path, Dir.pwd) if rules_path && !rules_path.empty?
    abort "cells:coverage: no rules file at #{rules_path}" if rules_path && !rules_path.empty? && !File.file?(rules_path)

    out_path = ENV.fetch("OUT", nil)
    out_path = out_path && !out_path.empty? ? File.expand_path(out_path, Dir.pwd) : File.join(root, "tmp", "cells-coverage.html")

    begin
      require "gitlab/cells/learn"
    rescue LoadError, StandardError => e
      abort "cells:coverage: cannot load gitlab/cells/learn from #{lib}: #{e.message}"
    end

    begin
      rules = rules_path && !rules_path.empty? ? File.read(rules_path) : nil
      classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(routes_path), rules: rules)
    rescue Gitlab::Cells::Learn::Error, JSON::ParserError => e
      source = e.is_a?(Gitlab::Cells::Learn::InvalidRulesError) ? rules_path : routes_path
      abort "cells:coverage: #{source}: #{e.class.name.split("::").last}: #{e.message}"
    end

    coverage = Gitlab::Cells::Learn::Coverage.new(classifier)
    puts "Route table: #{routes_path}"
    puts "Rules: #{rules_path && !rules_path.empty? ? rules_path : "GitLab defaults (rules/gitlab.json)"}"
    puts coverage.to_text
    FileUtils.mkdir_p(File.dirname(out_path))
    File.write(out_path, coverage.to_html(title: "GitLab Cells route coverage: #{File.basename(routes_path)}"))
    puts "\nHTML report: #{out_path}"
  end
end
