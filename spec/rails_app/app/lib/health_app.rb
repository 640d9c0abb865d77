# frozen_string_literal: true

# A mounted Rack app that the gem cannot follow (Sidekiq::Web's, Peek's place): it claims every
# path under its mount.
HealthApp = lambda do |env|
  [200, { "Content-Type" => "text/plain" }, ["ok #{env["PATH_INFO"]}"]]
end
