# frozen_string_literal: true

# Database setup for the differential spec, run inside the booted application:
#
#   ruby db/setup.rb load ROWS.json   # creates the schema and inserts the rows
#   ruby db/setup.rb delete PATHS...  # deletes the groups, users and projects at these full paths
#
# ROWS.json: {"groups": [{"path", "parent"?, "cell"}], "users": [{"username", "cell"}],
# "projects": [{"namespace", "path"}], "redirects": [{"from", "to"}]}.
require_relative "../config/environment"

module Setup
  module_function

  def load(rows)
    ActiveRecord::Schema.verbose = false
    require_relative "schema"
    rows.fetch("groups").each do |g|
      parent = g["parent"] && Group.find_by_full_path(g["parent"])
      group = Group.create!(path: g["path"], parent: parent, cell: g.fetch("cell"))
      Route.create!(source: group, path: [g["parent"], g["path"]].compact.join("/"))
    end
    rows.fetch("users").each do |u|
      namespace = Namespaces::UserNamespace.create!(path: u["username"], cell: u.fetch("cell"))
      Route.create!(source: namespace, path: u["username"])
      User.create!(username: u["username"], namespace: namespace)
    end
    rows.fetch("projects").each do |pr|
      namespace = Route.find_source(pr["namespace"], "Namespace")
      project = Project.create!(path: pr["path"], namespace: namespace)
      Route.create!(source: project, path: "#{pr["namespace"]}/#{pr["path"]}")
    end
    rows.fetch("redirects").each do |r|
      route = Route.find_by!(path: r["to"])
      RedirectRoute.create!(source_type: route.source_type, source_id: route.source_id, path: r["from"])
    end
  end

  def delete(paths)
    paths.each do |path|
      route = Route.find_by!(path: path)
      RedirectRoute.where(source_type: route.source_type, source_id: route.source_id).delete_all
      User.where(namespace_id: route.source_id).delete_all if route.source_type == "Namespace"
      route.source.delete
      route.delete
    end
  end
end

case ARGV.shift
when "load" then Setup.load(JSON.parse(File.read(ARGV.fetch(0))))
when "delete" then Setup.delete(ARGV)
else abort "usage: ruby db/setup.rb load ROWS.json | delete FULL_PATH..."
end
