# frozen_string_literal: true

require_relative "cache_header"

module Gitlab
  module Cells
    module Learn
      # Asking the integrator's resolver which cell holds an entity, shared by {Endpoint} and
      # {Middleware}: both must accept and refuse the same answers, so that the learn endpoint never
      # names a cell the middleware would not advertise. What they do with a failure differs (the
      # endpoint answers 503, the middleware logs and serves the request without a header), so a
      # failure is raised as {Failed} and each decides.
      #
      # @api private
      module Resolution
        # The resolver raised, or answered something that is not a cell name.
        class Failed < Error
          # @return [String] the endpoint's JSON error code
          attr_reader :code
          # @return [String] the line for the logger
          attr_reader :log_message

          def initialize(code, log_message, message)
            @code = code
            @log_message = log_message
            super(message)
          end
        end

        module_function

        # @param resolver [#call] Entity -> cell name or nil
        # @param entity [Entity]
        # @param cells [Array<String>, nil] the configured cells (nil: any valid cell name)
        # @return [String, nil] the cell, or nil when no cell claims the entity
        # @raise [Failed]
        def cell_for(resolver, entity, cells: nil)
          cell = begin
            resolver.call(entity)
          rescue StandardError => e
            raise Failed.new("resolver_failed", "resolver failed for #{entity}: #{e.class}: #{e.message}",
                             "the resolver raised #{e.class} for #{entity}")
          end
          return cell if cell.nil? || (CacheHeader.valid_cell?(cell) && (cells.nil? || cells.include?(cell)))

          raise Failed.new("invalid_resolver_answer",
                           "resolver answered #{cell.inspect} for #{entity}, which is not #{cells ? "a configured" : "a valid"} cell name",
                           "the resolver answered #{cell.inspect} (#{cell.class}) for #{entity}: expected nil or a " \
                           "cell name String of 1 to 64 of A-Z a-z 0-9 _ . -")
        end
      end
    end
  end
end
