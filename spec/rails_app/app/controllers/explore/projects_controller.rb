# frozen_string_literal: true

module Explore
  class ProjectsController < ApplicationController
    actions :index, :trending
  end
end
