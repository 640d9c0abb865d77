# frozen_string_literal: true

module Projects
  class IssuesController < ApplicationController
    actions :index, :show, :new, :create, :edit, :update, :destroy
  end
end
